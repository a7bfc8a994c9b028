"""``zoo_core.conformance`` is ``zoo_core.kit.conformance``: the same module object, under the name that
plugins and docs imported before the plugin kit became one package (patching either name patches both)."""

import sys

from zoo_core.kit import conformance

sys.modules[__name__] = conformance
