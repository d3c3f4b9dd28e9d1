"""`python -m policybot`: the same command line as the `policybot` script (bot.cli)."""
