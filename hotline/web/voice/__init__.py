"""The Twilio voice webhooks (the `/twilio` sub-application): callers, agents, placed calls."""
