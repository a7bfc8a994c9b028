"""``python -m zoo_core …`` is ``zoo …`` (handy under ``torchrun -m zoo_core train …``)."""

from zoo_core.cli import main

main()
