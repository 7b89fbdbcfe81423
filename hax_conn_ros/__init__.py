"""hax_conn's ROS 2 package: thin nodes over hax_conn_core, and the messages of msg/.

On a ROS install (colcon), rosidl's generated ``hax_conn_ros.msg`` is installed beside these
modules in one directory. In the pip-based development setup the generated messages live in a
separate directory on ``sys.path``; extending ``__path__`` lets ``hax_conn_ros.msg`` resolve there
while our modules come from the source tree. Harmless where both are one directory.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
