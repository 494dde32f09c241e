"""The turing pytest plugin, tested the way a user meets it: test files run by `pytester`."""

pytest_plugins = ["pytester"]
