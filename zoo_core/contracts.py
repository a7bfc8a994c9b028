"""``zoo_core.contracts`` is ``zoo_core.kit.contracts``: the same module object, under the name that
plugins and docs imported before the plugin kit became one package (patching either name patches both)."""

import sys

from zoo_core.kit import contracts

sys.modules[__name__] = contracts
