"""Running pytest on a kata and reading the result back: the maintainer's subprocess runs
(runner), the warm server that forks a run per save (warm, warm_socket) and its client
(warm_client), the arguments and time budget every run shares (args), and the JSON report
written inside pytest (json_report) and read back as typed outcomes (report)."""
