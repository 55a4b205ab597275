"""`python manage.py audit_verify [--checkpoints DIR]`: OK with the count, or the first bad
sequence number and why; exits non-zero on failure. With `-v 2` it reports progress on stderr
(the same walk the Verify page's background task runs)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.checkpoints import Checkpoint, InvalidCheckpoint, checkpoint_key, checkpoints_load
from audit.verification import PROGRESS_EVERY
from audit.verify import DEFAULT_BATCH_SIZE, VerificationStep, last_result, verify_chain_steps


class Command(BaseCommand):
    help = "Verify the audit log's hash chain (and, optionally, signed checkpoints)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoints",
            metavar="DIR",
            type=Path,
            help="Also check the log against the signed checkpoints in DIR "
            "(needs AUDIT_CHECKPOINT_KEY): detects a truncated tail and rewritten history.",
        )
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        checkpoints: list[Checkpoint] = []
        invalid: list[InvalidCheckpoint] = []
        directory = options["checkpoints"]
        if directory is not None:
            key = checkpoint_key()
            if key is None:
                raise CommandError("--checkpoints needs AUDIT_CHECKPOINT_KEY in the environment.")
            try:
                checkpoints, invalid = checkpoints_load(directory=directory, key=key)
            except FileNotFoundError as error:
                raise CommandError(str(error)) from error
            if not checkpoints and not invalid:
                raise CommandError(f"No checkpoint files (*.json) in {directory}.")
        steps = verify_chain_steps(
            batch_size=options["batch_size"],
            checkpoints=checkpoints,
            invalid_checkpoints=invalid,
            progress_every=PROGRESS_EVERY if options["verbosity"] >= 2 else 0,
        )
        result = last_result(self._report(steps) if options["verbosity"] >= 2 else steps)
        if not result.ok:
            raise CommandError(result.summary(), returncode=1)
        self.stdout.write(result.summary())

    def _report(self, steps: Iterator[VerificationStep]) -> Iterator[VerificationStep]:
        for step in steps:
            if step.result is None:
                self.stderr.write(f"{step.checked} of {step.total} events verified")
            yield step
