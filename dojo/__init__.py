"""The kata engine: catalogue, the stub/solution switch, time limits, the maintainer check and the CLI."""
