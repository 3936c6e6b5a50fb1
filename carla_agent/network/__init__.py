"""The steering network: model loading, preprocessing, PilotNet, data, training."""
