import asyncio
import socket


class MyProtocol(asyncio.Protocol):

    def __init__(self, on_con_lost):
        self.transport = None
        self.on_con_lost = on_con_lost

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        print("Received:", data.decode())

        # 작업을 완료했습니다: 트랜스포트를 닫습니다;
        # connection_lost()가 자동으로 호출됩니다.
        self.transport.close()

    def connection_lost(self, exc):
        # 소켓이 닫혔습니다
        self.on_con_lost.set_result(True)


async def main():
    # 저수준 API를 사용할 계획이므로
    # 이벤트 루프에 대한 참조를 얻습니다.
    loop = asyncio.get_running_loop()
    on_con_lost = loop.create_future()

    # 연결된 소켓 쌍을 만듭니다
    rsock, wsock = socket.socketpair()

    # 데이터를 기다릴 소켓을 등록합니다.
    transport, protocol = await loop.create_connection(
        lambda: MyProtocol(on_con_lost), sock=rsock)

    # 네트워크로부터의 데이터 수신을 흉내 냅니다.
    loop.call_soon(wsock.send, 'abc'.encode())

    try:
        await protocol.on_con_lost
    finally:
        transport.close()
        wsock.close()

asyncio.run(main())
