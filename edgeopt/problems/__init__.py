"""One module per problem: Instance and Solution types, ``evaluate`` (the referee), ``generate``."""
