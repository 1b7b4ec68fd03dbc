import asyncio
import sys

class DateProtocol(asyncio.SubprocessProtocol):
    def __init__(self, exit_future):
        self.exit_future = exit_future
        self.output = bytearray()
        self.pipe_closed = False
        self.exited = False

    def pipe_connection_lost(self, fd, exc):
        self.pipe_closed = True
        self.check_for_exit()

    def pipe_data_received(self, fd, data):
        self.output.extend(data)

    def process_exited(self):
        self.exited = True
        # pipe_connection_lost() 메서드 전에
        # process_exited() 메서드가 호출될 수 있습니다:
        # 두 메서드가 모두 호출될 때까지 기다립니다.
        self.check_for_exit()

    def check_for_exit(self):
        if self.pipe_closed and self.exited:
            self.exit_future.set_result(True)

async def get_date():
    # 저수준 API를 사용할 계획이므로
    # 이벤트 루프에 대한 참조를 얻습니다.
    loop = asyncio.get_running_loop()

    code = 'import datetime; print(datetime.datetime.now())'
    exit_future = asyncio.Future(loop=loop)

    # DateProtocol이 제어하는 서브 프로세스를 만듭니다;
    # 표준 출력을 파이프로 리디렉트합니다.
    transport, protocol = await loop.subprocess_exec(
        lambda: DateProtocol(exit_future),
        sys.executable, '-c', code,
        stdin=None, stderr=None)

    # 프로토콜의 process_exited() 메서드를 사용하여
    # 서브 프로세스 종료를 기다립니다.
    await exit_future

    # stdout 파이프를 닫습니다.
    transport.close()

    # 프로토콜의 pipe_data_received() 메서드로
    # 수집된 출력을 읽습니다.
    data = bytes(protocol.output)
    return data.decode('ascii').rstrip()

date = asyncio.run(get_date())
print(f"Current date: {date}")
