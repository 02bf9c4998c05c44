"""`kata drill`: timed practice on fresh copies of katas, a drill log and mock interviews."""
