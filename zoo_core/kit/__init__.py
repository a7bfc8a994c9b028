"""The plugin author's kit, one module per concept:

- ``contracts``: what an entry of each kind promises, defined once for the code that uses it and the checks;
- ``conformance``: the checks of registered entries that ``zoo check PLUGIN`` runs;
- ``testing``: the same checks (and one real epoch) for a plugin's own tests;
- ``scaffold``: ``zoo new-plugin NAME``, a package that passes them as generated.

Importing this package imports none of them (nor torch): ``zoo --help`` and ``zoo list`` stay light.
``zoo_core.contracts``, ``zoo_core.conformance``, ``zoo_core.testing`` and ``zoo_core.scaffold`` are these
same modules under the names they had before the kit became a package.
"""
