"""policybot: wiring, configuration and the chat-platform adapters around the shared core."""
