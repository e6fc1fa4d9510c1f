include "other.yar"
rule inc { condition: true }
