"""Enterprise notification transports: signed webhooks and RabbitMQ, with the SSRF guard in front of both."""
