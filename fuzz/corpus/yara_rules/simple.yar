rule simple { strings: $a = "WARD-MARKER" condition: $a }
