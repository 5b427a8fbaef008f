"""An example of your own learned image codec, evaluated with rdbench (README, "Evaluate your own model")."""
