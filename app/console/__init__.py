"""The officials' console (/console): server-rendered pages over the same query services as the JSON API."""
