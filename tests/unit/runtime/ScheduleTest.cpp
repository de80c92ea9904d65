//===- ScheduleTest.cpp - Tests of the learning-rate schedules ------------===//
//
// The step-decay values are those torch.optim.lr_scheduler.StepLR gave under
// Python 3 (torch 1.13), printed with "%.17g".
//
//===----------------------------------------------------------------------===//

#include "runtime/Schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

using namespace loom;

namespace {

std::string restoreError(std::map<std::string, std::string> metadata) {
  LrSchedule s = LrSchedule::constant(0.5);
  Status status = s.restore(metadata);
  EXPECT_FALSE(status.ok());
  // Unchanged on error.
  EXPECT_EQ(s.kind, LrSchedule::Constant);
  EXPECT_EQ(s.lr(), 0.5);
  return status.ok() ? "" : status.error();
}

std::string createError(LrSchedule::Kind kind, double lr, int64_t stepSize,
                        double gamma, double factor) {
  ErrorOr<LrSchedule> s = LrSchedule::create(kind, lr, stepSize, gamma, factor);
  EXPECT_FALSE(s.ok());
  return s.ok() ? "" : s.error();
}

TEST(ScheduleTest, ParsesKinds) {
  EXPECT_EQ(*parseScheduleKind("constant"), LrSchedule::Constant);
  EXPECT_EQ(*parseScheduleKind("step"), LrSchedule::Step);
  EXPECT_EQ(*parseScheduleKind("plateau"), LrSchedule::Plateau);
  ErrorOr<LrSchedule::Kind> k = parseScheduleKind("cosine");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error(), "unknown learning rate schedule 'cosine' (expected "
                       "'constant', 'step' or 'plateau')");
  EXPECT_STREQ(scheduleKindName(LrSchedule::Plateau), "plateau");
}

TEST(ScheduleTest, ConstantNeverChanges) {
  LrSchedule s = LrSchedule::constant(20);
  for (int64_t step = 1; step < 10; ++step)
    s.onStep(step);
  s.onValidation(5);
  s.onValidation(6);
  EXPECT_EQ(s.lr(), 20.0);
}

TEST(ScheduleTest, StepDecaysAsStepLR) {
  // StepLR(step_size=2, gamma=0.3) from lr 0.1, the lr of steps 0..8. The
  // last value differs from the closed form 0.1 * 0.3**4
  // (0.00080999999999999996): StepLR multiplies step by step.
  const char *torch[] = {"0.10000000000000001",   "0.10000000000000001",
                         "0.029999999999999999",  "0.029999999999999999",
                         "0.0089999999999999993", "0.0089999999999999993",
                         "0.0026999999999999997", "0.0026999999999999997",
                         "0.00080999999999999985"};
  LrSchedule s = LrSchedule::step(0.1, 2, 0.3);
  for (int64_t step = 0; step < 9; ++step) {
    EXPECT_EQ(s.lr(), std::strtod(torch[step], nullptr)) << "step " << step;
    s.onStep(step + 1);
    s.onValidation(1.0); // ignored
  }
  // Jumping ahead and back gives the same values.
  LrSchedule t = LrSchedule::step(0.1, 2, 0.3);
  t.onStep(8);
  EXPECT_EQ(t.lr(), std::strtod(torch[8], nullptr));
  t.onStep(3);
  EXPECT_EQ(t.lr(), std::strtod(torch[3], nullptr));
  t.onStep(0);
  EXPECT_EQ(t.lr(), 0.1);
}

TEST(ScheduleTest, PlateauFollowsWordLanguageModel) {
  LrSchedule s = LrSchedule::plateau(20);
  s.onStep(100); // ignored
  EXPECT_EQ(s.lr(), 20.0);
  s.onValidation(5.0); // first: best = 5
  EXPECT_EQ(s.lr(), 20.0);
  s.onValidation(4.0); // improved
  EXPECT_EQ(s.lr(), 20.0);
  s.onValidation(4.0); // not strictly better
  EXPECT_EQ(s.lr(), 5.0);
  s.onValidation(4.5);
  EXPECT_EQ(s.lr(), 1.25);
  s.onValidation(3.0);
  EXPECT_EQ(s.lr(), 1.25);
  EXPECT_TRUE(s.hasBest);
  EXPECT_EQ(s.bestLoss, 3.0);
  s.onValidation(std::nan("")); // NaN < best is false: decay
  EXPECT_EQ(s.lr(), 0.3125);

  // `not best_val_loss` holds for a best loss of 0.0: the next loss, even a
  // worse one, replaces it without decay.
  LrSchedule z = LrSchedule::plateau(1, 2);
  z.onValidation(0.0);
  z.onValidation(0.5);
  EXPECT_EQ(z.lr(), 1.0);
  EXPECT_EQ(z.bestLoss, 0.5);
  z.onValidation(0.7);
  EXPECT_EQ(z.lr(), 0.5);
}

TEST(ScheduleTest, SavesAndRestoresBitExactly) {
  LrSchedule step = LrSchedule::step(0.1 / 3, 3, 0.7);
  step.onStep(10);
  std::map<std::string, std::string> saved = step.save();
  EXPECT_EQ(saved.at("lr_schedule.kind"), "step");
  EXPECT_EQ(saved.at("lr_schedule.step_size"), "3");
  EXPECT_EQ(saved.at("lr_schedule.decays"), "3");
  saved["unrelated"] = "ignored";
  LrSchedule back;
  Status status = back.restore(saved);
  ASSERT_TRUE(status.ok()) << status.error();
  EXPECT_EQ(back.kind, LrSchedule::Step);
  EXPECT_EQ(back.initialLr, step.initialLr);
  EXPECT_EQ(back.lr(), step.lr());
  // Both continue identically.
  for (int64_t i = 11; i < 40; ++i) {
    step.onStep(i);
    back.onStep(i);
    EXPECT_EQ(back.lr(), step.lr());
  }

  LrSchedule plateau = LrSchedule::plateau(20, 4);
  std::map<std::string, std::string> fresh = plateau.save();
  EXPECT_EQ(fresh.at("lr_schedule.best_loss"), "none");
  plateau.onValidation(5.123456789012345);
  plateau.onValidation(6);
  saved = plateau.save();
  EXPECT_EQ(saved.at("lr_schedule.kind"), "plateau");
  EXPECT_EQ(saved.at("lr_schedule.lr"), "5");
  EXPECT_EQ(saved.at("lr_schedule.best_loss"), "5.1234567890123452");
  status = back.restore(saved);
  ASSERT_TRUE(status.ok()) << status.error();
  EXPECT_EQ(back.kind, LrSchedule::Plateau);
  EXPECT_TRUE(back.hasBest);
  EXPECT_EQ(back.bestLoss, 5.123456789012345);
  EXPECT_EQ(back.lr(), 5.0);
  back.onValidation(5.2);
  EXPECT_EQ(back.lr(), 1.25);

  status = back.restore(fresh);
  ASSERT_TRUE(status.ok()) << status.error();
  EXPECT_FALSE(back.hasBest);
  EXPECT_EQ(back.lr(), 20.0);

  LrSchedule constant = LrSchedule::constant(0.001);
  status = back.restore(constant.save());
  ASSERT_TRUE(status.ok()) << status.error();
  EXPECT_EQ(back.kind, LrSchedule::Constant);
  EXPECT_EQ(back.lr(), 0.001);
}

TEST(ScheduleTest, RestoreErrors) {
  std::map<std::string, std::string> good = LrSchedule::step(0.1, 2).save();
  auto without = [&](const std::string &key) {
    std::map<std::string, std::string> m = good;
    m.erase(key);
    return m;
  };
  auto with = [&](const std::string &key, const std::string &value) {
    std::map<std::string, std::string> m = good;
    m[key] = value;
    return m;
  };
  EXPECT_EQ(restoreError({}),
            "learning rate schedule: missing key 'lr_schedule.kind'");
  EXPECT_EQ(restoreError(without("lr_schedule.gamma")),
            "learning rate schedule: missing key 'lr_schedule.gamma'");
  EXPECT_EQ(restoreError(with("lr_schedule.kind", "cosine")),
            "learning rate schedule: 'lr_schedule.kind': unknown learning "
            "rate schedule 'cosine' (expected 'constant', 'step' or "
            "'plateau')");
  EXPECT_EQ(restoreError(with("lr_schedule.lr", "abc")),
            "learning rate schedule: 'lr_schedule.lr' is not a number: "
            "\"abc\"");
  EXPECT_EQ(restoreError(with("lr_schedule.lr", "0.5x")),
            "learning rate schedule: 'lr_schedule.lr' is not a number: "
            "\"0.5x\"");
  EXPECT_EQ(restoreError(with("lr_schedule.lr", "")),
            "learning rate schedule: 'lr_schedule.lr' is not a number: "
            "\"\"");
  EXPECT_EQ(restoreError(with("lr_schedule.lr", " 1")),
            "learning rate schedule: 'lr_schedule.lr' is not a number: "
            "\" 1\"");
  EXPECT_EQ(restoreError(with("lr_schedule.lr", "-1")),
            "learning rate schedule: 'lr_schedule.lr' must be positive and "
            "finite, got -1");
  EXPECT_EQ(restoreError(with("lr_schedule.lr", "inf")),
            "learning rate schedule: 'lr_schedule.lr' must be positive and "
            "finite, got inf");
  EXPECT_EQ(restoreError(with("lr_schedule.step_size", "1.5")),
            "learning rate schedule: 'lr_schedule.step_size' is not an "
            "integer: \"1.5\"");
  EXPECT_EQ(restoreError(with("lr_schedule.step_size", "99999999999999999999")),
            "learning rate schedule: 'lr_schedule.step_size' is not an "
            "integer: \"99999999999999999999\"");
  EXPECT_EQ(restoreError(with("lr_schedule.step_size", "0")),
            "learning rate schedule: the step size must be at least 1, got 0");
  EXPECT_EQ(restoreError(with("lr_schedule.gamma", "nan")),
            "learning rate schedule: gamma must be positive and finite, got "
            "nan");
  EXPECT_EQ(restoreError(with("lr_schedule.decays", "-2")),
            "learning rate schedule: 'lr_schedule.decays' must not be "
            "negative, got -2");
  std::map<std::string, std::string> plateau = LrSchedule::plateau(1.0).save();
  plateau["lr_schedule.best_loss"] = "best";
  EXPECT_EQ(restoreError(plateau),
            "learning rate schedule: 'lr_schedule.best_loss' is not a number: "
            "\"best\"");
}

TEST(ScheduleTest, CreateValidates) {
  ErrorOr<LrSchedule> s = LrSchedule::create(LrSchedule::Step, 1, 5, 0.5, 4);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->kind, LrSchedule::Step);
  EXPECT_EQ(s->stepSize, 5);
  EXPECT_EQ(s->gamma, 0.5);
  EXPECT_EQ(s->lr(), 1.0);
  EXPECT_EQ(createError(LrSchedule::Constant, 0, 1, 0.1, 4),
            "learning rate schedule: the learning rate must be positive and "
            "finite, got 0");
  EXPECT_EQ(createError(LrSchedule::Step, 1, 0, 0.1, 4),
            "learning rate schedule: the step size must be at least 1, got 0");
  EXPECT_EQ(createError(LrSchedule::Step, 1, 1, -0.1, 4),
            "learning rate schedule: gamma must be positive and finite, got "
            "-0.10000000000000001");
  EXPECT_EQ(createError(LrSchedule::Plateau, 1, 1, 0.1, 0),
            "learning rate schedule: the plateau factor must be positive and "
            "finite, got 0");
}

} // namespace
