"""The test-bed: a real cluster of `grey` processes driven by Locust at a list of offered
loads, measured from the store, and compared with the twin (`grey loadtest`, `grey calibrate`)."""
