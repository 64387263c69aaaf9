"""Monitoring during training: taps and pooling, :class:`RankMeMonitor`, the collapse alarm.

``from rankme.monitor import RankMeMonitor, CollapseAlarm, LidarViews, pool_output`` works as before.
"""

from rankme.monitor.alarm import CollapseAlarm, CollapseWarning
from rankme.monitor.config import MonitorConfig
from rankme.monitor.monitor import LidarViews, RankMeMonitor, check_tap
from rankme.monitor.taps import default_forward, pool_output

__all__ = ["CollapseAlarm", "CollapseWarning", "LidarViews", "MonitorConfig", "RankMeMonitor", "check_tap", "default_forward",
           "pool_output"]
