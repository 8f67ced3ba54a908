-- The `market` strategy (a model combined with the match's opening odds) beside the three
-- pure models: predictions, their scores and model versions may name it.

ALTER TABLE model_versions DROP CONSTRAINT model_versions_strategy_type_check;
ALTER TABLE model_versions ADD CONSTRAINT model_versions_strategy_type_check
    CHECK (strategy_type IN ('statistical', 'historical', 'ml_model', 'market'));

ALTER TABLE predictions DROP CONSTRAINT predictions_strategy_type_check;
ALTER TABLE predictions ADD CONSTRAINT predictions_strategy_type_check
    CHECK (strategy_type IN ('statistical', 'historical', 'ml_model', 'market'));

ALTER TABLE prediction_scores DROP CONSTRAINT prediction_scores_strategy_type_check;
ALTER TABLE prediction_scores ADD CONSTRAINT prediction_scores_strategy_type_check
    CHECK (strategy_type IN ('statistical', 'historical', 'ml_model', 'market'));
