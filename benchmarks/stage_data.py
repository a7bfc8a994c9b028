"""Carry the real data sets to a GPU machine in parts: a device call carries at most 64 MiB of working tree.

    python benchmarks/stage_data.py --dry-run            # the plan: parts, their files and the device calls
    python benchmarks/stage_data.py --part 2             # lay out part 2 in .gpu/data/part2 (ignored)
    python benchmarks/stage_data.py --assemble DIR       # on the device: the parts joined into DIR

../shared/data (or ZOO_SHARED_DATA, or --source) holds MNIST, six ~19 MiB CIFAR-10 files and prepare.py.
The parts are packed greedily, largest file first, under ``--budget`` MiB each (default 48, leaving room for
the working tree itself). Each part lives at its own ignored path, ``.gpu/data/partN``, so that carrying one
(``carry=[".gpu/data/partN"]``) leaves the parts carried before it in place on the warm machine; the last
call assembles them and runs the checks (``bash benchmarks/gpu_checks.sh`` does the assembling itself).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".gpu" / "data"
MIB = 1 << 20


def default_source() -> Path:
    return Path(os.environ.get("ZOO_SHARED_DATA") or ROOT.parent / "shared" / "data")


def data_files(source: Path, *, jpeg: bool = False) -> list[Path]:
    """The files to carry, relative to ``source``: prepare.py, its README and the data (the JPEG copy's
    archive only with ``jpeg``)."""
    files = [
        p.relative_to(source)
        for p in sorted(source.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and "__pycache__" not in p.parts
    ]
    return [f for f in files if jpeg or not f.name.startswith("cifar10-jpeg")]


def plan(source: Path, *, budget_mib: float = 48, jpeg: bool = False) -> list[list[Path]]:
    """Parts of at most ``budget_mib`` each (first fit, largest file first); prepare.py and the small files
    ride in part 1. A single file larger than the budget is an error."""
    budget = budget_mib * MIB
    sizes = {f: (source / f).stat().st_size for f in data_files(source, jpeg=jpeg)}
    too_big = [f for f, size in sizes.items() if size > budget]
    if too_big:
        raise SystemExit(f"stage_data: {too_big[0]} is larger than the {budget_mib:g} MiB budget of a part")
    parts: list[list[Path]] = []
    loads: list[int] = []
    for f in sorted(sizes, key=lambda f: (-sizes[f], str(f))):
        for i, load in enumerate(loads):
            if load + sizes[f] <= budget:
                parts[i].append(f)
                loads[i] += sizes[f]
                break
        else:
            parts.append([f])
            loads.append(sizes[f])
    # part 1 is the one that holds prepare.py: the assembler checks the others against its list
    parts.sort(key=lambda files: Path("prepare.py") not in files)
    return [sorted(files) for files in parts]


def describe(source: Path, parts: list[list[Path]]) -> str:
    lines = [f"Staging {source} in {len(parts)} device calls (each carries one part):"]
    for n, files in enumerate(parts, 1):
        size = sum((source / f).stat().st_size for f in files) / MIB
        last = n == len(parts)
        command = "bash benchmarks/gpu_checks.sh" if last else f"python3 benchmarks/stage_data.py --check {n}"
        lines.append(f"  part {n}: {size:.1f} MiB, {len(files)} files: {', '.join(map(str, files))}")
        lines.append(f"    here:   python benchmarks/stage_data.py --part {n}")
        lines.append(f'    device: run(command="{command}", carry=[".gpu/data/part{n}"])')
    lines.append(
        "Calls must follow each other while the machine is warm; a fresh machine starts again at part 1."
    )
    return "\n".join(lines)


def lay_out(source: Path, parts: list[list[Path]], n: int, stage: Path = STAGE) -> Path:
    """Copy part ``n``'s files into ``stage/partN`` (and the plan, so the device can check completeness)."""
    target = stage / f"part{n}"
    shutil.rmtree(target, ignore_errors=True)
    for f in parts[n - 1]:
        (target / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / f, target / f)
    (target / "PLAN.txt").write_text(
        "".join(f"{i}\t{f}\n" for i, files in enumerate(parts, 1) for f in files)
    )
    return target


def assemble(dest: Path, stage: Path = STAGE) -> Path:
    """Join the carried parts into ``dest`` (links, no copies); exits 1 naming the parts still missing."""
    plans = sorted(stage.glob("part*/PLAN.txt"))
    if not plans:
        raise SystemExit(f"stage_data: no part under {stage}; carry them first (stage_data.py --dry-run)")
    wanted = [line.split("\t") for line in plans[0].read_text().splitlines()]
    missing = sorted({int(n) for n, f in wanted if not (stage / f"part{n}" / f).is_file()})
    if missing:
        raise SystemExit(f"stage_data: part(s) {', '.join(map(str, missing))} not carried yet")
    for n, f in wanted:
        link = dest / f
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to((stage / f"part{n}" / f).resolve())
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--source", type=Path, default=None, help="default: ZOO_SHARED_DATA or ../shared/data"
    )
    parser.add_argument("--budget", type=float, default=48, help="MiB per part (default 48)")
    parser.add_argument("--jpeg", action="store_true", help="carry the JPEG copy's archive too")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--dry-run", action="store_true", help="show the plan")
    action.add_argument("--part", type=int, metavar="N", help="lay out part N here")
    action.add_argument("--check", type=int, metavar="N", help="on the device: say which parts are there")
    action.add_argument("--assemble", type=Path, metavar="DIR", help="on the device: join the parts")
    args = parser.parse_args()
    if args.check is not None or args.assemble is not None:
        if args.assemble is not None:
            print(assemble(args.assemble))
            return
        present = sorted(p.parent.name for p in STAGE.glob("part*/PLAN.txt"))
        print(f"carried so far: {', '.join(present) or 'nothing'}")
        return
    source = args.source or default_source()
    if not (source / "prepare.py").is_file():
        sys.exit(f"stage_data: no prepare.py in {source}")
    parts = plan(source, budget_mib=args.budget, jpeg=args.jpeg)
    if args.dry_run:
        print(describe(source, parts))
        return
    if not 1 <= args.part <= len(parts):
        sys.exit(f"stage_data: --part must be 1 to {len(parts)}")
    print(lay_out(source, parts, args.part))


if __name__ == "__main__":
    main()
