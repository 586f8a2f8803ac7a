"""Local tools for developing and testing Cromwell Courier. Nothing here is deployed."""
