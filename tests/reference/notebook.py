"""The notebook's own CNN, the code this project started from, kept nearly verbatim as the reference: the tests
compare cnn's layers with it, and the benchmark times it (python -m benchmarks). Not part of the cnn package.

Changes from the notebook: parameters are drawn from a numpy Generator passed in (same draw order as
np.random.randn), the layers keep their last gradients as attributes (kernels_gradient,
weights_gradient, ...) so tests can compare them, and `train`/`predict`/`notebook_network` helpers wrap
the notebook's loops. One sample at a time: x (C, H, W) for Convolutional, column vectors (n, 1) for Dense.
"""

import numpy as np
from scipy import signal


class Layer:
    def __init__(self):
        self.input = None
        self.output = None

    def forward(self, input):
        pass

    def backward(self, output_gradient, learning_rate):
        pass


class Dense(Layer):
    def __init__(self, input_size, output_size, rng):
        self.weights = rng.standard_normal((output_size, input_size))
        self.bias = rng.standard_normal((output_size, 1))

    def forward(self, input):
        self.input = input
        return np.dot(self.weights, self.input) + self.bias

    def backward(self, output_gradient, learning_rate):
        weights_gradient = np.dot(output_gradient, self.input.T)
        input_gradient = np.dot(self.weights.T, output_gradient)
        self.weights_gradient, self.bias_gradient = weights_gradient, output_gradient
        self.weights -= learning_rate * weights_gradient
        self.bias -= learning_rate * output_gradient
        return input_gradient


class Activation(Layer):
    def __init__(self, activation, activation_prime):
        self.activation = activation
        self.activation_prime = activation_prime

    def forward(self, input):
        self.input = input
        return self.activation(self.input)

    def backward(self, output_gradient, learning_rate):
        return np.multiply(output_gradient, self.activation_prime(self.input))


class Tanh(Activation):
    def __init__(self):
        def tanh(x):
            return np.tanh(x)

        def tanh_prime(x):
            return 1 - np.tanh(x) ** 2

        super().__init__(tanh, tanh_prime)


class Sigmoid(Activation):
    def __init__(self):
        def sigmoid(x):
            return 1 / (1 + np.exp(-x))

        def sigmoid_prime(x):
            return sigmoid(x) * (1 - sigmoid(x))

        super().__init__(sigmoid, sigmoid_prime)


class Convolutional(Layer):
    def __init__(self, input_shape, kernel_size, depth, rng):
        input_depth, input_height, input_width = input_shape
        self.depth = depth
        self.input_shape = input_shape
        self.input_depth = input_depth
        self.output_shape = (depth, input_height - kernel_size + 1, input_width - kernel_size + 1)
        self.kernels_shape = (depth, input_depth, kernel_size, kernel_size)
        self.kernels = rng.standard_normal(self.kernels_shape)
        self.biases = rng.standard_normal(self.output_shape)

    def forward(self, input):
        self.input = input
        self.output = np.copy(self.biases)
        for i in range(self.depth):
            for j in range(self.input_depth):
                self.output[i] += signal.correlate2d(self.input[j], self.kernels[i, j], "valid")
        return self.output

    def backward(self, output_gradient, learning_rate):
        kernels_gradient = np.zeros(self.kernels_shape)
        input_gradient = np.zeros(self.input_shape)

        for i in range(self.depth):
            for j in range(self.input_depth):
                kernels_gradient[i, j] = signal.correlate2d(self.input[j], output_gradient[i], "valid")
                input_gradient[j] += signal.convolve2d(output_gradient[i], self.kernels[i, j], "full")

        self.kernels_gradient, self.biases_gradient = kernels_gradient, output_gradient
        self.kernels -= learning_rate * kernels_gradient
        self.biases -= learning_rate * output_gradient
        return input_gradient


class Reshape(Layer):
    def __init__(self, input_shape, output_shape):
        self.input_shape = input_shape
        self.output_shape = output_shape

    def forward(self, input):
        return np.reshape(input, self.output_shape)

    def backward(self, output_gradient, learning_rate):
        return np.reshape(output_gradient, self.input_shape)


def binary_cross_entropy(y_true, y_pred):
    return -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))


def binary_cross_entropy_prime(y_true, y_pred):
    return ((1 - y_true) / (1 - y_pred) - y_true / y_pred) / np.size(y_true)


def notebook_network(rng, input_shape=(1, 28, 28), kernel_size=3, depth=5, hidden=100, classes=2):
    """The notebook's network: conv 5x3x3, sigmoid, reshape, dense 100, sigmoid, dense 2, sigmoid."""
    _, h, w = input_shape
    flat = depth * (h - kernel_size + 1) * (w - kernel_size + 1)
    return [
        Convolutional(input_shape, kernel_size, depth, rng),
        Sigmoid(),
        Reshape((depth, h - kernel_size + 1, w - kernel_size + 1), (flat, 1)),
        Dense(flat, hidden, rng),
        Sigmoid(),
        Dense(hidden, classes, rng),
        Sigmoid(),
    ]


def predict(network, input):
    """Forward one sample through the notebook's layer list."""
    output = input
    for layer in network:
        output = layer.forward(output)
    return output


def train(x, y, epochs, lr, rng, network=None, log=None):
    """The notebook's training loop: per-sample SGD on BCE, data in the given order (no shuffling).

    x (N, C, H, W); y (N, K) or (N, K, 1) one-hot. Builds notebook_network(rng) unless `network` is
    given. Returns (network, per-epoch mean losses); log(epoch, error) is called after each epoch.
    """
    if network is None:
        network = notebook_network(rng, input_shape=tuple(x.shape[1:]), classes=y.shape[1])
    errors = []
    for e in range(epochs):
        error = 0
        for xs, ys in zip(x, y, strict=True):
            ys = ys.reshape(-1, 1)
            output = predict(network, xs)
            error += binary_cross_entropy(ys, output)
            grad = binary_cross_entropy_prime(ys, output)
            for layer in reversed(network):
                grad = layer.backward(grad, lr)
        error /= len(x)
        errors.append(float(error))
        if log is not None:
            log(e + 1, error)
    return network, errors
