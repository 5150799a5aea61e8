"""`edge-audio record --out DIR`: clips and room negatives from the board's own
microphone, through the same capture path as `listen`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .runner import SubParsers


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..record import BACKGROUND_LABEL, RecordPlan, default_session, record
    from ..source import Source

    session = args.session or default_session()
    if args.minutes is not None:
        plan = RecordPlan.minutes(args.out, args.label or BACKGROUND_LABEL, args.minutes, session)
    else:
        if not args.label:
            raise ConfigError("--clips needs --label (the class the clips are of)")
        plan = RecordPlan.clips(args.out, args.label, args.clips, args.seconds, session)
    if args.simulate is not None:
        from ..file_source import FileSource

        source: Source = FileSource(args.simulate, realtime=False)
    else:
        from ..microphone import MicSource

        source = MicSource(args.device)
    try:
        print(f"{source.describe()}; writing {plan.out / plan.label}/", file=sys.stderr)
        written = record(source, plan, lambda line: print(line, file=sys.stderr, flush=True))
    finally:
        source.close()
    overflows = source.overflows
    for path in written:
        print(path)
    note = f", {overflows} chunks lost to overflows" if overflows else ""
    print(f"wrote {len(written)} files in {plan.out / plan.label}{note}", file=sys.stderr)
    return 0 if len(written) == plan.files else 1


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="record clips or room negatives with the board's microphone",
        description="Record through the same capture path as listen, at the device's own rate, "
        "into OUT/LABEL/SESSION_NNN.wav: train on the microphone that will run the model. "
        "--clips N --seconds S records N clips with a second to get ready between them; "
        "--minutes M records M minutes of the room, a file a minute, into _background_ "
        "unless --label says otherwise. The session is the files' group: "
        "train with --groups '{label}/{group}_*.wav'.",
        epilog="examples:\n"
        "  edge-audio record --out my_sounds --label knock --clips 20 --seconds 2\n"
        "  edge-audio record --out my_sounds --minutes 30 --session kitchen",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True, help="dataset folder (one folder a label)")
    p.add_argument("--label", help="class of the recording (default for --minutes: _background_)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--minutes", type=float, help="record this long, a file a minute")
    what.add_argument("--clips", type=int, help="record this many clips of --seconds")
    p.add_argument("--seconds", type=float, default=2.0, help="length of a clip (default 2)")
    p.add_argument("--session", help="group name of these files (default: recYYYYMMDD-HHMMSS)")
    p.add_argument("--device", help="input device: index or part of its name (default: default)")
    p.add_argument("--simulate", type=Path, metavar="FILE", help="read a recording instead")
    p.set_defaults(run=run)
    return p
