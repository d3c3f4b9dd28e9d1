"""Platform-neutral conversation handlers: every surface (console, Slack, Teams) calls these."""
