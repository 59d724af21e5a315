"""Applications on top of the zoo library: the runner, sweeps, leaderboard, seed study, submissions, generators."""
