"""The ``hax-conn`` command line: one small class per subcommand, registered by name."""
