//! Failed-login throttling per username and per source IP, counted in DynamoDB with a TTL.
