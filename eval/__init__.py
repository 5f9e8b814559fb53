"""eval: the 46-language lm-eval suite, results store and the leaderboard site."""
