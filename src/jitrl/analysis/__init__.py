"""Reading finished runs: statistics, comparison reports and explanations of decisions."""
