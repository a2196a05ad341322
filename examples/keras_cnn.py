"""The seed's Keras CNN (Keras 2's classic mnist_cnn.py), run by graphc.

Two things differ from the Keras original, as the issue allows: the imports name graphc.keras,
and the data is scikit-learn's 8x8 digits scaled up to MNIST's layout (28x28 uint8, 0-255), so
nothing is downloaded. Everything from `batch_size = 128` to the last print is Keras's script.
With the real MNIST files in a folder, `mnist.load_data(path=folder)` gives the original data.
"""
from __future__ import print_function

import numpy as np
from sklearn.datasets import load_digits

from graphc import keras
from graphc.keras.models import Sequential
from graphc.keras.layers import Dense, Dropout, Flatten
from graphc.keras.layers import Conv2D, MaxPooling2D
from graphc.keras import backend as K

MIN_TEST_ACCURACY = 0.97


def digits_as_mnist():
    """Digits upsampled 3x (24x24) and padded to 28x28, as uint8 0-255; a fixed split."""
    digits = load_digits()
    images = np.kron(digits.images, np.ones((3, 3))) * (255.0 / 16.0)
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))).astype(np.uint8)
    order = np.random.RandomState(0).permutation(len(images))
    images, labels = images[order], digits.target[order].astype(np.uint8)
    return (images[:1400], labels[:1400]), (images[1400:], labels[1400:])


batch_size = 128
num_classes = 10
epochs = 12

# input image dimensions
img_rows, img_cols = 28, 28

# the data, split between train and test sets
(x_train, y_train), (x_test, y_test) = digits_as_mnist()

if K.image_data_format() == 'channels_first':
    x_train = x_train.reshape(x_train.shape[0], 1, img_rows, img_cols)
    x_test = x_test.reshape(x_test.shape[0], 1, img_rows, img_cols)
    input_shape = (1, img_rows, img_cols)
else:
    x_train = x_train.reshape(x_train.shape[0], img_rows, img_cols, 1)
    x_test = x_test.reshape(x_test.shape[0], img_rows, img_cols, 1)
    input_shape = (img_rows, img_cols, 1)

x_train = x_train.astype('float32')
x_test = x_test.astype('float32')
x_train /= 255
x_test /= 255
print('x_train shape:', x_train.shape)
print(x_train.shape[0], 'train samples')
print(x_test.shape[0], 'test samples')

# convert class vectors to binary class matrices
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

model = Sequential()
model.add(Conv2D(32, kernel_size=(3, 3),
                 activation='relu',
                 input_shape=input_shape))
model.add(Conv2D(64, (3, 3), activation='relu'))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Dropout(0.25))
model.add(Flatten())
model.add(Dense(128, activation='relu'))
model.add(Dropout(0.5))
model.add(Dense(num_classes, activation='softmax'))

model.compile(loss=keras.losses.categorical_crossentropy,
              optimizer=keras.optimizers.Adadelta(),
              metrics=['accuracy'])

model.fit(x_train, y_train,
          batch_size=batch_size,
          epochs=epochs,
          verbose=1,
          validation_data=(x_test, y_test))
score = model.evaluate(x_test, y_test, verbose=0)
print('Test loss:', score[0])
print('Test accuracy:', score[1])

assert score[1] >= MIN_TEST_ACCURACY, f"test accuracy {score[1]:.4f} is below {MIN_TEST_ACCURACY}"
