package keygen

// pairwise is suite OS1's K(self, peer) (package suite/os1 is the suite
// itself; it imports keygen, so keygen's own tests derive it here).
func (k *PartyKey) pairwise(peer string) (Pairwise, error) {
	s, err := k.BlomSecret(peer)
	if err != nil {
		return Pairwise{}, err
	}
	defer clear(s[:])
	return DerivePairwise(k.params.System, s[:], LabelPairwise, k.identity, peer)
}
