"""Paper heuristics and baselines: pure functions Instance -> Solution, one module per problem."""
