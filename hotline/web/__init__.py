"""The aiohttp server: Twilio webhooks in, TwiML out, and the ops API."""
