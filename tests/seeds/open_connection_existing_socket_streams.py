import asyncio
import socket

async def wait_for_data():
    # 저수준 API에 액세스하기 위해 현재 이벤트 루프에 대한 참조를 가져옵니다.
    loop = asyncio.get_running_loop()

    # 연결된 소켓 쌍을 만듭니다.
    rsock, wsock = socket.socketpair()

    # 데이터를 기다리는 열린 소켓을 등록합니다.
    reader, writer = await asyncio.open_connection(sock=rsock)

    # 네트워크로부터의 데이터 수신을 시뮬레이션합니다
    loop.call_soon(wsock.send, 'abc'.encode())

    # 데이터를 기다립니다
    data = await reader.read(100)

    # 데이터를 받았습니다, 할 일을 마쳤습니다: 소켓을 닫습니다.
    print("Received:", data.decode())
    writer.close()
    await writer.wait_closed()

    # 두 번째 소켓을 닫습니다
    wsock.close()

asyncio.run(wait_for_data())
