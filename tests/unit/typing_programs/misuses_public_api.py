# Each marked line must be reported by mypy with the error code after "E:".
import tideloop

x: str = tideloop.run(1)  # E: arg-type
tideloop.new_event_loop(poller=3)  # E: arg-type
m = tideloop.metrics()
y: str = m.utilization  # E: assignment
reader: tideloop.StreamReader = tideloop.StreamWriter  # E: assignment
