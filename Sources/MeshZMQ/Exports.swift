// MeshZMQ: see ZMQError.swift, ZMQSocket.swift, ZMQTransport.swift.
import Mesh
