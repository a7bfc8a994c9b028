"""``zoo_core.scaffold`` is ``zoo_core.kit.scaffold``: the same module object, under the name that
plugins and docs imported before the plugin kit became one package (patching either name patches both)."""

import sys

from zoo_core.kit import scaffold

sys.modules[__name__] = scaffold
