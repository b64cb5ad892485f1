module xdnat.example/goverify

go 1.19
