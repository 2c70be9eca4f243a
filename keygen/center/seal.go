package center

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/internal/wire"
)

// box is a secret sealed under a passphrase: XChaCha20-Poly1305 under an
// argon2id key of the passphrase and a fresh salt, with the file's public
// fields as associated data. The master file (master.go) and each
// officer's share file (officers.go) are a box plus their own fields.
type box struct {
	kdf   KDF
	salt  [16]byte
	nonce [chacha20poly1305.NonceSizeX]byte
	ct    []byte
}

// newBox draws a fresh salt and nonce (in that order) for a box of cost kdf.
func newBox(kdf KDF, r io.Reader) (*box, error) {
	if r == nil {
		r = rand.Reader
	}
	if err := kdf.check(); err != nil {
		return nil, err
	}
	b := &box{kdf: kdf}
	if _, err := io.ReadFull(r, b.salt[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r, b.nonce[:]); err != nil {
		return nil, err
	}
	return b, nil
}

// parseBox reads a box's fields as a file carries them, for a secret of
// size bytes.
func parseBox(kdf KDF, salt, nonce, ct string, size int) (*box, error) {
	if err := kdf.check(); err != nil {
		return nil, err
	}
	b := &box{kdf: kdf}
	s, err := wire.UnB64Len(salt, len(b.salt))
	if err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	copy(b.salt[:], s)
	n, err := wire.UnB64Len(nonce, len(b.nonce))
	if err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	copy(b.nonce[:], n)
	if b.ct, err = wire.UnB64Len(ct, size+chacha20poly1305.Overhead); err != nil {
		return nil, fmt.Errorf("ciphertext: %w", err)
	}
	return b, nil
}

// saltB64 and nonceB64 are the box's fields as its file writes them.
func (b *box) saltB64() string  { return wire.B64(b.salt[:]) }
func (b *box) nonceB64() string { return wire.B64(b.nonce[:]) }
func (b *box) ctB64() string    { return wire.B64(b.ct) }

func (b *box) aead(passphrase []byte) (cipher.AEAD, error) {
	key := argon2.IDKey(passphrase, b.salt[:], b.kdf.Time, b.kdf.Memory, b.kdf.Threads, chacha20poly1305.KeySize)
	defer clear(key)
	return chacha20poly1305.NewX(key)
}

// seal encrypts secret with associated data aad into the box.
func (b *box) seal(passphrase, secret, aad []byte) error {
	a, err := b.aead(passphrase)
	if err != nil {
		return err
	}
	b.ct = a.Seal(nil, b.nonce[:], secret, aad)
	return nil
}

// open decrypts the box; any failure (wrong passphrase, altered file) is
// ErrPassphrase. The caller clears the secret.
func (b *box) open(passphrase, aad []byte) ([]byte, error) {
	a, err := b.aead(passphrase)
	if err != nil {
		return nil, err
	}
	secret, err := a.Open(nil, b.nonce[:], b.ct, aad)
	if err != nil {
		return nil, ErrPassphrase
	}
	return secret, nil
}
