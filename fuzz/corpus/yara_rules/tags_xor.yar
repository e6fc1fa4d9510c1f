rule tagged : ransomware demo
{
    strings:
        $x = "hello" xor(1-255)
        $b = "aGVsbG8" base64
        $f = "hello" fullword private
    condition:
        any of them and not defined(1/0)
}
