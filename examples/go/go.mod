module tank.example/tank

go 1.19
