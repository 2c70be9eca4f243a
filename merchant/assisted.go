package merchant

// Assisted orders (DESIGN.md §6.7, seed 003): consultant login with the
// company's signature, a fresh second identifier per login, and the proof
// every order keyed in the session must carry.

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/assisted"
	"orderseal/internal/problem"
	"orderseal/internal/signedhttp"
	"orderseal/internal/web"
	"orderseal/internal/wire"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/order"
)

// loginWindow bounds how far a login's date may be from the merchant's clock,
// like the signed-request window.
const loginWindow = 5 * time.Minute

func sessionView(sess *store.Session, now time.Time) api.Session {
	v := api.Session{Session: sess.ID, Consultant: sess.Consultant, Company: sess.Company, Device: sess.Device,
		DeviceKey: wire.B64(sess.DeviceKey),
		Created:   sess.Created.Format(time.RFC3339), Expires: sess.Expires.Format(time.RFC3339), State: sess.State(now)}
	if !sess.Ended.IsZero() {
		v.Ended = sess.Ended.Format(time.RFC3339)
	}
	return v
}

// login opens an assisted session for the signing consultant, vouched for by
// one of the merchant's companies, on one device, for at most one shift.
func (s *Server) login(c echo.Context) error {
	ctx := c.Request().Context()
	var r api.LoginRequest
	if err := web.Bind(c, &r, api.MaxLoginBody); err != nil {
		return err
	}
	if err := r.Check(); err != nil {
		return problem.New(http.StatusBadRequest, api.CodeLoginInvalid, "Invalid login", err.Error())
	}
	if r.Consultant != signedhttp.Caller(c) {
		return problem.New(http.StatusForbidden, api.CodeLoginInvalid, "Not your login",
			"The login names another consultant than the one who signed the request.")
	}
	now := s.now()
	date, _ := time.Parse(time.RFC3339, r.Date) // Check parsed it
	if d := now.Sub(date); d > loginWindow || d < -loginWindow {
		return problem.New(http.StatusUnauthorized, api.CodeLoginStale, "Login outside its window",
			"The login's date is more than 5 minutes from the merchant's clock.")
	}
	if !slices.Contains(s.cfg.Companies, r.Company) {
		return problem.New(http.StatusForbidden, api.CodeCompanyNotAccepted, "Company not accepted",
			"This merchant takes phone orders only from its own call-center companies.")
	}
	if !r.VerifyCompany(s.cfg.Keys) {
		s.log.Warn("assisted login refused", "consultant", r.Consultant, "company", r.Company, "device", r.Device, "reason", api.CodeCompanySignature)
		return problem.New(http.StatusForbidden, api.CodeCompanySignature, "Company signature invalid",
			"The login must carry the company's signature over these fields.")
	}
	if !r.VerifyDevice(s.cfg.Keys.Identity()) {
		s.log.Warn("assisted login refused", "consultant", r.Consultant, "company", r.Company, "device", r.Device, "reason", api.CodeDeviceKeyMismatch)
		return problem.New(http.StatusForbidden, api.CodeDeviceKeyMismatch, "Device signature invalid",
			"The login must be signed by the device key it registers.")
	}
	devKey, _ := assisted.ParseDevicePublic(r.DeviceKey) // Check parsed it
	id, err := order.NewSessionID(nil)
	if err != nil {
		return err
	}
	secret, err := assisted.NewSecret()
	if err != nil {
		return err
	}
	defer clear(secret)
	hash := assisted.SecretHash(secret)
	shift := min(time.Duration(r.ShiftSeconds)*time.Second, s.cfg.MaxShift)
	now = now.UTC().Truncate(time.Second)
	sess := &store.Session{ID: id, Consultant: r.Consultant, Company: r.Company, Device: r.Device,
		DeviceKey: devKey[:], SecretHash: hash[:], LoginNonce: r.Nonce, Created: now, Expires: now.Add(shift)}
	ended, err := s.cfg.Store.StartSession(ctx, sess)
	if errors.Is(err, store.ErrLoginReplayed) {
		return problem.New(http.StatusConflict, api.CodeLoginReplayed, "Login already used",
			"This login request was already used; log in again.")
	}
	if err != nil {
		return unavailable(err)
	}
	out := sessionView(sess, now)
	sealed, err := assisted.SealSecret(s.cfg.Keys, out.Consultant, out.Session, out.Device, secret)
	if err != nil {
		return err
	}
	out.SealedID = &sealed
	s.log.Info("assisted login", "consultant", sess.Consultant, "company", sess.Company, "device", sess.Device,
		"session", sess.ID, "expires", sess.Expires.Format(time.RFC3339), "ended", ended)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, out)
}

// ownSession loads the caller's session named in the path.
func (s *Server) ownSession(c echo.Context) (*store.Session, error) {
	sess, err := s.cfg.Store.Session(c.Request().Context(), c.Param("id"))
	if errors.Is(err, store.ErrNoSession) || (err == nil && sess.Consultant != signedhttp.Caller(c)) {
		return nil, problem.New(http.StatusNotFound, api.CodeSessionUnknown, "Unknown session", "No such session of this consultant.")
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return sess, nil
}

func (s *Server) session(c echo.Context) error {
	sess, err := s.ownSession(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sessionView(sess, s.now()))
}

// logout ends the caller's session; its second identifier proves nothing
// from then on. Logging out twice is not an error.
func (s *Server) logout(c echo.Context) error {
	sess, err := s.ownSession(c)
	if err != nil {
		return err
	}
	if sess, err = s.cfg.Store.EndSession(c.Request().Context(), sess.ID, store.EndLogout); err != nil {
		return unavailable(err)
	}
	s.log.Info("assisted logout", "consultant", sess.Consultant, "session", sess.ID, "state", sess.State(s.now()))
	return c.JSON(http.StatusOK, sessionView(sess, s.now()))
}

// assistedIntake takes an order keyed in a session: the same checks as an
// online order, plus the session's.
func (s *Server) assistedIntake(c echo.Context) error {
	var r api.AssistedOrder
	if err := web.Bind(c, &r, api.MaxAssistedBody); err != nil {
		return err
	}
	return s.accept(c, r.Bundle, &r)
}

// checkSession verifies an assisted order against its session: the bundle
// names the session, which belongs to the consultant, is live, was issued to
// the device the order comes from, and whose second identifier the proof
// carries, bound to this bundle's header hash.
func (s *Server) checkSession(ctx context.Context, b *order.Bundle, sec *order.Section, r *api.AssistedOrder) *problem.Problem {
	if sec.Session != r.Session {
		return problem.New(http.StatusUnprocessableEntity, api.CodeSessionMismatch, "Session differs",
			"The bundle names another session than the request.")
	}
	sess, err := s.cfg.Store.Session(ctx, r.Session)
	if errors.Is(err, store.ErrNoSession) || (err == nil && sess.Consultant != b.Cardholder) {
		return problem.New(http.StatusForbidden, api.CodeSessionUnknown, "Unknown session", "No such session of this consultant.")
	}
	if err != nil {
		return unavailable(err)
	}
	if p := sessionProblem(sess.Err(s.now())); p != nil {
		return p
	}
	if r.Device != sess.Device {
		s.log.Warn("assisted order refused", "consultant", sess.Consultant, "session", sess.ID, "device", r.Device,
			"session_device", sess.Device, "reason", api.CodeDeviceMismatch)
		return problem.New(http.StatusForbidden, api.CodeDeviceMismatch, "Session used from another device",
			"This session was issued to another device.")
	}
	// The device key registered at login must have signed this proof: a
	// session file and consultant key copied to another terminal sign with
	// another key, or none.
	sig, _ := wire.UnB64(r.DeviceSignature)
	devKey, err := assisted.ParseDevicePublic(wire.B64(sess.DeviceKey))
	if err == nil {
		err = devKey.VerifyOrder(s.cfg.Keys.Identity(), sess.Consultant, sess.ID, r.Device, b.HeaderHash(), r.Proof, sig)
	}
	if err != nil {
		s.log.Warn("assisted order refused", "consultant", sess.Consultant, "session", sess.ID, "device", r.Device, "reason", api.CodeDeviceKeyMismatch)
		return problem.New(http.StatusForbidden, api.CodeDeviceKeyMismatch, "Not signed by the session's device",
			"The order must be signed by the device key the session was opened with.")
	}
	secret, err := assisted.OpenProof(s.cfg.Keys, sess.Consultant, sess.ID, r.Device, b.HeaderHash(), r.Proof)
	defer clear(secret)
	if err != nil {
		return problem.New(http.StatusForbidden, api.CodeProofInvalid, "Session proof invalid",
			"The proof does not open for this bundle, session and device.")
	}
	if got := assisted.SecretHash(secret); subtle.ConstantTimeCompare(got[:], sess.SecretHash) != 1 {
		return problem.New(http.StatusForbidden, api.CodeProofInvalid, "Session proof invalid",
			"The proof carries another identifier than this session's.")
	}
	return nil
}

// sessionProblem maps the store's session errors to problems; nil for others.
func sessionProblem(err error) *problem.Problem {
	switch {
	case errors.Is(err, store.ErrSessionEnded):
		return problem.New(http.StatusForbidden, api.CodeSessionEnded, "Session ended",
			"The session was logged out or replaced by a later login; log in again.")
	case errors.Is(err, store.ErrSessionExpired):
		return problem.New(http.StatusForbidden, api.CodeSessionExpired, "Session expired",
			"The session's shift is over; log in again.")
	case errors.Is(err, store.ErrNoSession):
		return problem.New(http.StatusForbidden, api.CodeSessionUnknown, "Unknown session", "No such session of this consultant.")
	}
	return nil
}
