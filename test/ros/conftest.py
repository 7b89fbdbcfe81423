"""Fixtures for tests of the ROS side: a real rclpy context on an isolated DDS domain."""

import os
import random

import pytest


@pytest.fixture
def ros_context():
    """An initialised rclpy context, shut down afterwards.

    Each test gets a random DDS domain and localhost-only discovery, so that parallel test runs on
    one machine never hear each other.
    """
    import rclpy  # a missing rclpy is a broken setup: fail, never skip

    os.environ["ROS_DOMAIN_ID"] = str(random.Random().randint(1, 100))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    context = rclpy.context.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)
