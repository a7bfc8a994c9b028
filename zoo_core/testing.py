"""``zoo_core.testing`` is ``zoo_core.kit.testing``: the same module object, under the name that
plugins and docs imported before the plugin kit became one package (patching either name patches both)."""

import sys

from zoo_core.kit import testing

sys.modules[__name__] = testing
