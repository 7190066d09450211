"""The stores: the DynamoDB event index and the immutable S3 raw store."""
