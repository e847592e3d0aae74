"""Order service: orders in its own DynamoDB table; calls inventory, payment and user through the mesh."""
