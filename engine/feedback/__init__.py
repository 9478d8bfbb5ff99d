"""Delivery feedback: what the providers report after they accepted a message.

SendGrid's signed Event Webhook and Twilio's status callbacks become `Event`s (engine.feedback.
sendgrid, engine.feedback.twilio); `record` stores each once by the provider's own event id and
applies its effect on the message (delivery state), the customer (an address that bounced for
good, an opt-out) and the timeline, each once however often the provider posts it."""
