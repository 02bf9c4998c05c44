"""Loads the kata engine's pytest plugin (and the services fixtures) for every run in this repo."""

pytest_plugins = ["dojo.pytest_plugin", "fixtures.plugin", "fixtures.docker_tools"]
