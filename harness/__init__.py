"""The engine: contracts (spec), the loop and clock (runner), results, tuning, scoring."""
