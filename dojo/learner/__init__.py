"""The learner's side of the `kata` command: progress, runs, watch mode, hints, diffs, resets, doctor."""
